"""The staff web console (后台): server-rendered pages under ``/console/`` on the service's own HTTP
server, reached through a one-time link sent in the chat. Pages call the same query functions the chat
commands, jobs and exports call, so a figure on a page is the figure in chat."""
