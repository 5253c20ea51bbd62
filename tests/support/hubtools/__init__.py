"""A Hugging Face Hub on loopback for tests: olah over git repos the tests build."""
