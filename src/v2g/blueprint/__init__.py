"""The V2G service blueprint as data: model, loader, validation, rendering and export. Pure."""
