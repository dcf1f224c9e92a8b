"""What the browser tests need: a course JupyterLab of their own, lessons to open in it, and a
learner's hands and eyes on its pages (Playwright driving Chromium)."""
