"""The pages people use: the agent console (``/console/``) and the customer page
(``/c/{token}``), rendered on the server by the API process."""
