using System.Text;
using Candor.Server.Audit;
using Candor.Server.Core;
using Candor.Xmpp;

namespace Candor.Server.Modules.Audit;

/// <summary>
/// Promise 6 for each user: the ad-hoc command "What did the operator do with my account?" lists the operator log's
/// entries about the requesting account, each with its leaf hash and inclusion proof in the latest signed head, so
/// that a client can check them against the head published at /.well-known/candor/audit.
/// </summary>
public sealed class AuditModule : IModule
{
    public const string CommandNode = "operator-log";

    public IReadOnlyList<Protocol> Protocols { get; } = [];

    public void Register(XmppServer server) =>
        server.Disco.Commands[CommandNode] = new(CommandNode, "What did the operator do with my account?", requester => ListAsync(server.Audit, requester));

    private static ValueTask<AdHocResult> ListAsync(AuditLog log, Jid requester)
    {
        var account = requester.Bare.ToString();
        var head = log.LatestHead;
        var entries = log.Read().Where(e => e.Account == account).ToList();
        var note = new StringBuilder();
        if (entries.Count == 0) note.Append("The operator log has no entry about ").Append(account).Append('.');
        var leaves = head is null ? [] : log.LeafHashes(head.Size);
        foreach (var entry in entries)
        {
            note.AppendLine(entry.ToString().Trim());
            note.Append("  leaf ").Append(Convert.ToBase64String(entry.LeafHash));
            if (head is not null && entry.Index < head.Size)
                note.Append("; inclusion proof in the head of size ").Append(head.Size).Append(": ")
                    .AppendJoin(' ', MerkleTree.InclusionProof(leaves, entry.Index, head.Size).Select(Convert.ToBase64String));
            else note.Append("; not in a signed head yet (one is signed within a minute)");
            note.AppendLine();
        }
        if (head is not null)
            note.AppendLine().Append("Signed tree head: ").Append(head.ToJson()).Append(" (also at /.well-known/candor/audit)");
        return ValueTask.FromResult(new AdHocResult(note.ToString().TrimEnd()));
    }
}
