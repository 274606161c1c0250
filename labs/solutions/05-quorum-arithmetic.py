"""Solution of labs/05-quorum-arithmetic.ipynb: one '# cell: <id>' section per answer cell."""

# cell: answer-prediction
# A majority of 5 is 3: with 2 cut off the leader still has itself and 2 followers;
# with 3 cut off it has 2, and nobody else has more than 1.
my_prediction = 3

# cell: answer-partition
# The leader with one follower: 2 of 5 voters. The other three are a majority: they
# elect a leader of their own and go on committing.
follower = next(name for name in cluster.names if name != leader)
my_partition = [["leader", follower]]
