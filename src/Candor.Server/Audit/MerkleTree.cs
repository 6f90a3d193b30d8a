using System.Security.Cryptography;

namespace Candor.Server.Audit;

/// <summary>
/// The Merkle tree of RFC 9162 section 2.1 (as in RFC 6962): SHA-256, leaves hashed with a 0x00 prefix, interior
/// nodes with 0x01, the tree split at the largest power of two below its size. It works on the list of leaf hashes;
/// an operator log stays small enough that computing over all of them is cheap.
/// </summary>
public static class MerkleTree
{
    public const int HashSize = 32;

    public static byte[] LeafHash(ReadOnlySpan<byte> data)
    {
        var input = new byte[data.Length + 1];
        data.CopyTo(input.AsSpan(1));
        return SHA256.HashData(input);
    }

    public static byte[] NodeHash(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        Span<byte> input = stackalloc byte[1 + 2 * HashSize];
        input[0] = 1;
        left.CopyTo(input[1..]);
        right.CopyTo(input[(1 + HashSize)..]);
        return SHA256.HashData(input);
    }

    /// <summary>MTH of the first <paramref name="size"/> leaves.</summary>
    public static byte[] Root(IReadOnlyList<byte[]> leaves, long size)
    {
        if (size < 0 || size > leaves.Count) throw new ArgumentOutOfRangeException(nameof(size));
        return size == 0 ? SHA256.HashData([]) : Hash(leaves, 0, (int)size);
    }

    /// <summary>PATH(m, D[n]): the audit path of leaf <paramref name="index"/> in the tree of the first <paramref name="size"/> leaves.</summary>
    public static List<byte[]> InclusionProof(IReadOnlyList<byte[]> leaves, long index, long size)
    {
        if (size > leaves.Count || index < 0 || index >= size) throw new ArgumentOutOfRangeException(nameof(index));
        var proof = new List<byte[]>();
        Path((int)index, leaves, 0, (int)size, proof);
        return proof;
    }

    /// <summary>PROOF(m, D[n]): proves that the tree of size <paramref name="first"/> is a prefix of the tree of size <paramref name="second"/>.</summary>
    public static List<byte[]> ConsistencyProof(IReadOnlyList<byte[]> leaves, long first, long second)
    {
        if (second > leaves.Count || first < 0 || first > second) throw new ArgumentOutOfRangeException(nameof(first));
        var proof = new List<byte[]>();
        if (first > 0 && first < second) SubProof((int)first, leaves, 0, (int)second, true, proof);
        return proof;
    }

    /// <summary>RFC 9162 section 2.1.3.2.</summary>
    public static bool VerifyInclusion(long index, long size, ReadOnlySpan<byte> leafHash, IReadOnlyList<byte[]> proof, ReadOnlySpan<byte> root)
    {
        if (index < 0 || index >= size) return false;
        long fn = index, sn = size - 1;
        var r = leafHash.ToArray();
        foreach (var p in proof)
        {
            if (p.Length != HashSize || sn == 0) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                r = NodeHash(p, r);
                while ((fn & 1) == 0 && fn != 0) { fn >>= 1; sn >>= 1; }
            }
            else r = NodeHash(r, p);
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && r.AsSpan().SequenceEqual(root);
    }

    /// <summary>RFC 9162 section 2.1.4.2; equal sizes need an empty proof and equal roots, and every tree extends the empty one.</summary>
    public static bool VerifyConsistency(long first, long second, ReadOnlySpan<byte> firstRoot, ReadOnlySpan<byte> secondRoot, IReadOnlyList<byte[]> proof)
    {
        if (first < 0 || first > second) return false;
        if (first == second) return proof.Count == 0 && firstRoot.SequenceEqual(secondRoot);
        if (first == 0) return proof.Count == 0;
        if (proof.Count == 0) return false;
        var path = (first & (first - 1)) == 0 ? [firstRoot.ToArray(), .. proof] : proof;
        long fn = first - 1, sn = second - 1;
        while ((fn & 1) == 1) { fn >>= 1; sn >>= 1; }
        var fr = path[0];
        var sr = path[0];
        for (var i = 1; i < path.Count; i++)
        {
            var c = path[i];
            if (c.Length != HashSize || sn == 0) return false;
            if ((fn & 1) == 1 || fn == sn)
            {
                fr = NodeHash(c, fr);
                sr = NodeHash(c, sr);
                while ((fn & 1) == 0 && fn != 0) { fn >>= 1; sn >>= 1; }
            }
            else sr = NodeHash(sr, c);
            fn >>= 1;
            sn >>= 1;
        }
        return sn == 0 && fr.AsSpan().SequenceEqual(firstRoot) && sr.AsSpan().SequenceEqual(secondRoot);
    }

    private static int Split(int n)
    {
        var k = 1;
        while (k << 1 < n) k <<= 1;
        return k;
    }

    private static byte[] Hash(IReadOnlyList<byte[]> leaves, int start, int n)
    {
        if (n == 1) return leaves[start];
        var k = Split(n);
        return NodeHash(Hash(leaves, start, k), Hash(leaves, start + k, n - k));
    }

    private static void Path(int m, IReadOnlyList<byte[]> leaves, int start, int n, List<byte[]> proof)
    {
        if (n <= 1) return;
        var k = Split(n);
        if (m < k)
        {
            Path(m, leaves, start, k, proof);
            proof.Add(Hash(leaves, start + k, n - k));
        }
        else
        {
            Path(m - k, leaves, start + k, n - k, proof);
            proof.Add(Hash(leaves, start, k));
        }
    }

    private static void SubProof(int m, IReadOnlyList<byte[]> leaves, int start, int n, bool complete, List<byte[]> proof)
    {
        if (m == n)
        {
            if (!complete) proof.Add(Hash(leaves, start, n));
            return;
        }
        var k = Split(n);
        if (m <= k)
        {
            SubProof(m, leaves, start, k, complete, proof);
            proof.Add(Hash(leaves, start + k, n - k));
        }
        else
        {
            SubProof(m - k, leaves, start + k, n - k, false, proof);
            proof.Add(Hash(leaves, start, k));
        }
    }
}
