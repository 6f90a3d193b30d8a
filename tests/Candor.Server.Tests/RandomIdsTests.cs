using System.Collections.Concurrent;
using Candor.Server.Core;

namespace Candor.Server.Tests;

/// <summary>The stanza-ids of archived messages: version 7 UUIDs from a per-thread block of the OS generator.</summary>
public class RandomIdsTests
{
    [Fact]
    public void A_stanza_id_is_a_version_7_uuid_carrying_the_time_it_was_made_at()
    {
        var now = DateTimeOffset.FromUnixTimeMilliseconds(1_796_623_443_681);
        var id = RandomIds.Uuid7(now);

        var uuid = Guid.Parse(id);
        Assert.Equal(id, uuid.ToString());
        Assert.Equal(7, uuid.Version);
        Assert.Equal(0b10, (uuid.ToByteArray(bigEndian: true)[8] >> 6));
        Assert.Equal(now.ToUnixTimeMilliseconds().ToString("x12"), id.Replace("-", "")[..12]);
    }

    [Fact]
    public void Stanza_ids_made_at_the_same_millisecond_on_many_threads_are_all_different()
    {
        var now = DateTimeOffset.UtcNow;
        var ids = new ConcurrentBag<string>();
        Parallel.For(0, 8, _ =>
        {
            for (var i = 0; i < 5_000; i++) ids.Add(RandomIds.Uuid7(now));
        });

        Assert.Equal(40_000, ids.Distinct().Count());
        // The 74 random bits differ in every position across that many ids, block boundaries included.
        var tails = ids.Select(id => id.Replace("-", "")[13..]).ToList();
        for (var position = 0; position < tails[0].Length; position++)
            Assert.True(tails.Select(tail => tail[position]).Distinct().Count() > 1, $"position {position} never varies");
    }
}
