"""Composition: builds settings, databases, transports and processes, and wires api and workers together."""
