"""Pure math of the Alpha cycle: returns, foundation gate, HTR selection, optimisation, portfolio."""
