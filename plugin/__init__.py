"""Front ends of CMFNet Restore: Qt app, GIMP bridge, file-manager integration."""
