"""Wire contracts of the scorer: the records on every topic, and the error tree."""
