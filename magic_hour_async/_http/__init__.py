"""HTTP: the transport (the only client-side module that talks to aiohttp), the retry policy, total deadlines,
redaction of secrets, configuration."""
