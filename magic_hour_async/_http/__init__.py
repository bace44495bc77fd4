"""HTTP: the transport (the only client-side module that talks to aiohttp), retry timing, configuration."""
