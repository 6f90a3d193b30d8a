using Candor.Server.Audit;

namespace Candor.Server.Tests.Audit;

/// <summary>
/// RFC 9162 hashing and proofs against the Certificate Transparency reference vectors (the leaves, roots and
/// proofs of certificate-transparency-go's and Trillian's merkle test data), and every proof of trees up to 40
/// leaves checked to verify, and to fail once anything about it changes.
/// </summary>
public sealed class MerkleTreeTests
{
    private static readonly byte[][] Leaves =
        [.. new[] { "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f" }
            .Select(h => MerkleTree.LeafHash(Convert.FromHexString(h)))];

    private static readonly string[] Roots =
    [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    private static string Hex(byte[] b) => Convert.ToHexStringLower(b);
    private static string[] Hex(IEnumerable<byte[]> proof) => [.. proof.Select(Hex)];

    [Fact]
    public void RootsMatchTheReferenceForEverySize()
    {
        for (var n = 0; n <= Leaves.Length; n++)
            Assert.Equal(Roots[n], Hex(MerkleTree.Root(Leaves, n)));
    }

    [Theory]
    [InlineData(0, 8, "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7,5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e,6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]
    [InlineData(5, 8, "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b,ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0,d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]
    [InlineData(0, 1, "")]
    public void InclusionProofsMatchTheReference(int index, int size, string expected)
    {
        var proof = MerkleTree.InclusionProof(Leaves, index, size);
        Assert.Equal(expected.Split(',', StringSplitOptions.RemoveEmptyEntries), Hex(proof));
        Assert.True(MerkleTree.VerifyInclusion(index, size, Leaves[index], proof, Convert.FromHexString(Roots[size])));
    }

    [Theory]
    [InlineData(1, 8, "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7,5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e,6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]
    [InlineData(2, 8, "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e,6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4")]
    [InlineData(6, 8, "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a,ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0,d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7")]
    [InlineData(2, 5, "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e,bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b")]
    public void ConsistencyProofsMatchTheReference(int first, int second, string expected)
    {
        var proof = MerkleTree.ConsistencyProof(Leaves, first, second);
        Assert.Equal(expected.Split(','), Hex(proof));
        Assert.True(MerkleTree.VerifyConsistency(first, second, Convert.FromHexString(Roots[first]), Convert.FromHexString(Roots[second]), proof));
    }

    [Fact]
    public void EveryInclusionProofVerifiesAndNoAlteredOneDoes()
    {
        var leaves = Enumerable.Range(0, 40).Select(i => MerkleTree.LeafHash([(byte)i, (byte)(i * 7)])).ToArray();
        for (var n = 1; n <= leaves.Length; n++)
        {
            var root = MerkleTree.Root(leaves, n);
            for (var i = 0; i < n; i++)
            {
                var proof = MerkleTree.InclusionProof(leaves, i, n);
                Assert.True(MerkleTree.VerifyInclusion(i, n, leaves[i], proof, root), $"leaf {i} of {n}");
                Assert.False(MerkleTree.VerifyInclusion(i, n, leaves[(i + 1) % leaves.Length], proof, root));
                if (n > 1)
                {
                    Assert.False(MerkleTree.VerifyInclusion((i + 1) % n, n, leaves[i], proof, root));
                    Assert.False(MerkleTree.VerifyInclusion(i, 2 * n, leaves[i], proof, root));
                    Assert.False(MerkleTree.VerifyInclusion(i, n, leaves[i], proof[..^1], root));
                    Assert.False(MerkleTree.VerifyInclusion(i, n, leaves[i], [.. proof, root], root));
                }
            }
        }
    }

    [Fact]
    public void EveryConsistencyProofVerifiesAndNoAlteredOneDoes()
    {
        var leaves = Enumerable.Range(0, 40).Select(i => MerkleTree.LeafHash([(byte)i])).ToArray();
        for (var n = 1; n <= leaves.Length; n++)
            for (var m = 1; m <= n; m++)
            {
                var first = MerkleTree.Root(leaves, m);
                var second = MerkleTree.Root(leaves, n);
                var proof = MerkleTree.ConsistencyProof(leaves, m, n);
                Assert.True(MerkleTree.VerifyConsistency(m, n, first, second, proof), $"{m} to {n}");
                if (m == n) continue;
                // A different history of the same size (the fork a monitor must catch) does not verify.
                var forked = leaves.ToArray();
                forked[m - 1] = MerkleTree.LeafHash([0xff]);
                Assert.False(MerkleTree.VerifyConsistency(m, n, MerkleTree.Root(forked, m), second, proof));
                Assert.False(MerkleTree.VerifyConsistency(m, n, first, MerkleTree.Root(forked, n), proof));
                Assert.False(MerkleTree.VerifyConsistency(m, n, first, second, proof[..^1]));
                if (m > 1) Assert.False(MerkleTree.VerifyConsistency(m - 1, n, first, second, proof));
            }
    }
}
