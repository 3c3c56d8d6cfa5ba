"""Fuzz tests: random, malformed and illegal input must only ever raise the documented errors."""
