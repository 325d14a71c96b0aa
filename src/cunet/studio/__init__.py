"""cunet studio: the local web app for colouring a photo interactively.

`app.create_app` builds the FastAPI server (its JSON API is what the page uses, documented at
/docs); `store.PhotoStore` holds the open photos; `static/` is the page itself, plain HTML, CSS and
JavaScript shipped in the package, with nothing fetched from the internet.
"""
