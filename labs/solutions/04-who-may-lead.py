"""Solution of labs/04-who-may-lead.ipynb: one '# cell: <id>' section per answer cell."""

# cell: answer-prediction
# n3 was cut off and fell behind; the monitors recorded its revocation, so only n2 is in
# the eligible set they agreed on. n3 still says replica_eligible:1, but a monitor votes
# only for a candidate of the recorded set.
my_prediction = "n2"
