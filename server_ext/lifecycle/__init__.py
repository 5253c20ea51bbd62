"""Deployment lifecycle: records and their store, the controller, replicas, routing, idle
unload, restore after a restart, and pull jobs."""
