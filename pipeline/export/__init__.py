"""What leaves with a deliverable besides the picture: OTIO/EDL/FCP XML timelines, the manifest."""
