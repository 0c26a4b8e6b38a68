"""The host's state, read through a HostReader (the Host's paths, problems recorded, one read
per scrape shared by the collectors that need it) and handed to the parsers. Nothing here
touches a filesystem that could hang."""
