"""Streamlit widgets and session plumbing shared by the app's pages (UI only: no HTTP here,
except the sidebar's explicit connection test in `connection.py`)."""
