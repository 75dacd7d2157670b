"""End-to-end jobs that tie readers, models, samplers, runners and writers together."""
