"""genesis_dist: the sim scene sharded over Ray actors, with one checkpoint that reshards on load."""
