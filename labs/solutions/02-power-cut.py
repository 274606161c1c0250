"""Solution of labs/02-power-cut.ipynb: one '# cell: <id>' section per answer cell."""

# cell: answer-appendfsync
# Only "always" fsyncs before the replies leave: a power cut can take nothing the node
# has acknowledged. "everysec" acknowledges up to a second of writes that are only in
# the operating system's memory; "no" even more.
my_appendfsync = "always"
