"""`optimlab serve`: the interactive playground, a FastAPI app and one static page.

The page draws what the JSON API computes with the same engine as the CLI
(:func:`optimlab.engine.trajectory.run_trajectory`); no optimizer runs in JavaScript.
Build the app with :func:`optimlab.web.app.create_app`.
"""
