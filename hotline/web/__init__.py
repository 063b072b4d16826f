"""The pages: server-rendered Jinja2 from the top-level templates/, in Simplified Chinese."""
