"""A class on one shared stack: the learner's side, the hub, roles, progress."""
