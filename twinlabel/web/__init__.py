"""Pages and the REST API: thin views over both apps' services and selectors."""
