// Tests start real servers on loopback; in parallel on a small machine they would measure contention, not the client.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
