#!/usr/bin/env bash
# Start the dashboard on the bundled data. The first start creates the database
# (data/anime.db unless DATABASE_URL says otherwise) and the index cache.
source "$(dirname "$0")/_venv.sh"
ensure_requirements requirements.txt
exec .venv/bin/python -m streamlit run app.py "$@"
