"""Running a grid: preparing cases, Ray tasks on an embedded instance or a cluster, and the watchdog."""
