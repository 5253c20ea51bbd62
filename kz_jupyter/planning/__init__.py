"""Planning: the engine contract, engine environments, hardware, memory and the planner that
picks an engine, files and context for a model."""
