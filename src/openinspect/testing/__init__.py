"""Test doubles that speak real wire protocols (e.g. the scripted LLM server in ``llm_server``)."""
