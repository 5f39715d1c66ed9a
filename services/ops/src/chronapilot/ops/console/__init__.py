"""The ops console: fleet health, one connection's story, and the operator's actions."""
