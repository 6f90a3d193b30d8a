// Interop tests start real servers and real clients; run them one at a time so that timeouts
// measure the code under test, not contention between tests on a small machine.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
