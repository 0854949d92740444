"""One behavioural contract, run over every backend a user can pick."""
