"""The pages: server-rendered HTML, one module per resource; thin views that check access and call
one service or selector. Their scripts talk to the REST API (twinlabel/web/api/)."""
