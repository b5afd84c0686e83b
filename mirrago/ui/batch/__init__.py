"""Batch page widgets: input table, run controls, gallery, images and history."""
