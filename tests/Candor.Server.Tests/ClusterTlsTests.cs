using Candor.Server.Cluster;

namespace Candor.Server.Tests;

/// <summary>The cluster port's key (docs/CLUSTER.md, "Security of the cluster port"): one per secret and cluster.</summary>
public sealed class ClusterTlsTests
{
    private const string Secret = "a cluster secret of at least thirty-two characters";

    [Fact]
    public void Nodes_with_the_same_secret_accept_each_other()
    {
        var one = new ClusterTls(Secret, "candor-example.org");
        var other = new ClusterTls(Secret, "candor-example.org");
        Assert.NotEqual(one.Certificate.RawData, other.Certificate.RawData);
        Assert.True(one.IsClusterKey(other.Certificate));
        Assert.True(other.IsClusterKey(one.Certificate));
        Assert.True(one.Certificate.HasPrivateKey);
    }

    [Theory]
    [InlineData("another cluster secret of at least thirty-two chars", "candor-example.org")]
    [InlineData(Secret, "candor-example.net")]
    public void Another_secret_or_cluster_is_refused(string secret, string cluster)
    {
        var node = new ClusterTls(Secret, "candor-example.org");
        Assert.False(node.IsClusterKey(new ClusterTls(secret, cluster).Certificate));
    }
}
