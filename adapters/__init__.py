"""Framework adapters behind one TrainingAdapter interface. Each imports its framework lazily."""
