"""The Slack app: mentions and DMs start sessions, thread replies continue them, and each
thread gets one live status message and a final one. See ``docs/slack.md``."""
