"""Trainable RL agents (stable-baselines3), their feature extractors, and PolicyScheduler."""
