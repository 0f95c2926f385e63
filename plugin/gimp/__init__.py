"""GIMP 3 bridge: the plug-in lives in cmfnet-restore/, installer.py copies it into a GIMP profile."""
