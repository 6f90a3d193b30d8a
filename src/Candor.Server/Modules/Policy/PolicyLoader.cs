using System.Text;
using System.Text.Json;
using System.Text.Unicode;

namespace Candor.Server.Modules.Policy;

/// <summary>
/// Reads a policy file (format in docs/CONFIGURATION.md, "Policy file"). Strict: an unknown property, a
/// repeated one, a value of the wrong type or an unknown keyword is an error naming the line, because a
/// misspelt "phrases" silently ignored would be a rule that is published but never enforced.
/// Comments (// and /* */) and trailing commas are allowed: operators annotate their rules.
/// </summary>
public static class PolicyLoader
{
    public const int MaxIdLength = 64;
    public const int MaxPhraseLength = 256;
    public const int MaxRegexLength = 1000;

    public static PolicyDefinition LoadFile(string path)
    {
        byte[] bytes;
        // .NET says "Access to the path is denied" for a directory: name what is wrong instead.
        if (Directory.Exists(path)) throw new PolicyException(path, 0, "is a directory, not a file");
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new PolicyException(path, 0, "no such file");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PolicyException(path, 0, $"cannot read it: {e.Message}");
        }
        // Compiling (PolicyMatcher) checks what parsing cannot: regex syntax, phrases that normalize to nothing.
        return Parse(bytes, path);
    }

    public static PolicyDefinition Parse(string json, string file = "(policy)") => Parse(Encoding.UTF8.GetBytes(json), file);

    public static PolicyDefinition Parse(ReadOnlySpan<byte> json, string file = "(policy)")
    {
        if (json.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) json = json[3..];
        // Utf8JsonReader only notices invalid UTF-8 when a string is read, and then throws InvalidOperationException,
        // not JsonException: check the whole file first (found by fuzzing; a Latin-1 file crashed a reload).
        if (!Utf8.IsValid(json)) throw new PolicyException(file, FirstInvalidLine(json), "not valid UTF-8 (save the file as UTF-8)");
        var parser = new Parser(json, file);
        try
        {
            return parser.ReadPolicy();
        }
        catch (JsonException e)
        {
            // System.Text.Json appends "LineNumber: 2 | BytePositionInLine: 7." to its messages; we say it our way.
            var message = e.Message;
            var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
            if (cut > 0) message = message[..cut];
            var line = (int)(e.LineNumber ?? 0) + 1;
            throw new PolicyException(file, line, $"not valid JSON: {message.TrimEnd()} (column {(e.BytePositionInLine ?? 0) + 1})");
        }
    }

    private static int FirstInvalidLine(ReadOnlySpan<byte> json)
    {
        var valid = 0;
        while (valid < json.Length && Rune.DecodeFromUtf8(json[valid..], out _, out var used) == System.Buffers.OperationStatus.Done) valid += used;
        return 1 + json[..valid].Count((byte)'\n');
    }

    private ref struct Parser(ReadOnlySpan<byte> json, string file)
    {
        private readonly ReadOnlySpan<byte> _json = json;
        private Utf8JsonReader _reader = new(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });

        private readonly int Line => 1 + _json[..(int)_reader.TokenStartIndex].Count((byte)'\n');

        private readonly PolicyException Error(string reason) => new(file, Line, reason);

        private void Next()
        {
            if (!_reader.Read()) throw Error("unexpected end of file");
        }

        public PolicyDefinition ReadPolicy()
        {
            Next();
            if (_reader.TokenType != JsonTokenType.StartObject) throw Error("the policy must be a JSON object, e.g. {\"rules\": [...]}");
            string? version = null;
            List<PolicyRule> rules = [];
            var seen = new HashSet<string>(StringComparer.Ordinal);
            while (true)
            {
                Next();
                if (_reader.TokenType == JsonTokenType.EndObject) break;
                var name = PropertyName(seen);
                Next();
                switch (name)
                {
                    case "version":
                        version = _reader.TokenType == JsonTokenType.Number
                            ? Encoding.UTF8.GetString(_reader.ValueSpan)
                            : String("version", allowEmpty: false);
                        break;
                    case "rules":
                        ReadRules(rules);
                        break;
                    case "$schema":
                    case "comment":
                        String(name, allowEmpty: true);
                        break;
                    default:
                        throw Error($"unknown property '{name}' (expected version, rules)");
                }
            }
            if (_reader.Read()) throw Error("unexpected content after the policy object");
            return new PolicyDefinition { Version = version, Rules = rules };
        }

        private void ReadRules(List<PolicyRule> rules)
        {
            if (_reader.TokenType != JsonTokenType.StartArray) throw Error("'rules' must be an array of rule objects");
            var ids = new HashSet<string>(StringComparer.Ordinal);
            while (true)
            {
                Next();
                if (_reader.TokenType == JsonTokenType.EndArray) return;
                var line = Line;
                var rule = ReadRule(line);
                if (!ids.Add(rule.Id)) throw new PolicyException(file, line, $"rule id '{rule.Id}' is used twice");
                rules.Add(rule);
            }
        }

        private PolicyRule ReadRule(int line)
        {
            if (_reader.TokenType != JsonTokenType.StartObject) throw Error("each rule must be an object with id, description and phrases or regex");
            string? id = null, description = null;
            List<string> phrases = [], regex = [];
            var match = PhraseMatch.Word;
            var ignoreSeparators = false;
            var where = PolicyFields.Body | PolicyFields.Subject;
            var whose = PolicyWhose.Everyone;
            var action = PolicyAction.Reject;
            var seen = new HashSet<string>(StringComparer.Ordinal);
            while (true)
            {
                Next();
                if (_reader.TokenType == JsonTokenType.EndObject) break;
                var name = PropertyName(seen);
                Next();
                switch (name)
                {
                    case "id":
                        id = String("id", allowEmpty: false);
                        if (id.Length > MaxIdLength) throw Error($"'id' is longer than {MaxIdLength} characters");
                        if (id.Any(char.IsControl)) throw Error("'id' contains control characters");
                        break;
                    case "description":
                        description = String("description", allowEmpty: false);
                        break;
                    case "phrases":
                        StringList("phrases", phrases, MaxPhraseLength);
                        break;
                    case "regex":
                        StringList("regex", regex, MaxRegexLength);
                        break;
                    case "match":
                        match = Keyword("match", ["word", "substring"]) == "word" ? PhraseMatch.Word : PhraseMatch.Substring;
                        break;
                    case "ignoreSeparators":
                        if (_reader.TokenType is not (JsonTokenType.True or JsonTokenType.False)) throw Error("'ignoreSeparators' must be true or false");
                        ignoreSeparators = _reader.GetBoolean();
                        break;
                    case "where":
                        where = Fields();
                        break;
                    case "whose":
                        whose = Keyword("whose", ["everyone", "strangers"]) == "everyone" ? PolicyWhose.Everyone : PolicyWhose.Strangers;
                        break;
                    case "action":
                        action = Keyword("action", ["reject", "allow"]) == "reject" ? PolicyAction.Reject : PolicyAction.Allow;
                        break;
                    case "comment":
                        String(name, allowEmpty: true);
                        break;
                    default:
                        throw Error($"unknown rule property '{name}' (expected id, description, phrases, regex, match, ignoreSeparators, where, whose, action)");
                }
            }
            if (id is null) throw new PolicyException(file, line, "a rule has no 'id'");
            if (description is null) throw new PolicyException(file, line, $"rule '{id}' has no 'description' (it is published and sent to senders)");
            if (phrases.Count == 0 && regex.Count == 0) throw new PolicyException(file, line, $"rule '{id}' has neither 'phrases' nor 'regex'");
            return new PolicyRule
            {
                Id = id, Description = description, Phrases = phrases, Regex = regex, Match = match,
                IgnoreSeparators = ignoreSeparators, Where = where, Whose = whose, Action = action, Line = line,
            };
        }

        // An escape such as \uDEEE (half of a surrogate pair) passes the reader and fails only here, with
        // InvalidOperationException rather than JsonException (found by fuzzing).
        private readonly string Text()
        {
            try
            {
                return _reader.GetString()!;
            }
            catch (InvalidOperationException)
            {
                throw Error("a string contains an invalid \\u escape (half of a surrogate pair)");
            }
        }

        private readonly string PropertyName(HashSet<string> seen)
        {
            var name = Text();
            if (!seen.Add(name)) throw Error($"'{name}' is given twice");
            return name;
        }

        private readonly string String(string name, bool allowEmpty)
        {
            if (_reader.TokenType != JsonTokenType.String) throw Error($"'{name}' must be a string");
            var value = Text();
            if (!allowEmpty && string.IsNullOrWhiteSpace(value)) throw Error($"'{name}' must not be empty");
            return value;
        }

        private readonly string Keyword(string name, string[] allowed)
        {
            var value = String(name, allowEmpty: false);
            if (Array.IndexOf(allowed, value) < 0)
                throw Error($"'{name}' must be {string.Join(" or ", allowed.Select(a => $"\"{a}\""))}, not \"{value}\"");
            return value;
        }

        /// <summary>A string or an array of strings.</summary>
        private void StringList(string name, List<string> into, int maxLength)
        {
            if (_reader.TokenType == JsonTokenType.String)
            {
                into.Add(Item(name, maxLength));
                return;
            }
            if (_reader.TokenType != JsonTokenType.StartArray) throw Error($"'{name}' must be an array of strings");
            while (true)
            {
                Next();
                if (_reader.TokenType == JsonTokenType.EndArray) return;
                into.Add(Item(name, maxLength));
            }
        }

        private readonly string Item(string name, int maxLength)
        {
            if (_reader.TokenType != JsonTokenType.String) throw Error($"'{name}' must contain only strings");
            var value = Text();
            if (value.Length == 0) throw Error($"'{name}' contains an empty string");
            if (value.Length > maxLength) throw Error($"an entry of '{name}' is longer than {maxLength} characters");
            return value;
        }

        private PolicyFields Fields()
        {
            var names = new List<string>();
            StringList("where", names, 16);
            var fields = PolicyFields.None;
            foreach (var n in names)
                fields |= n switch
                {
                    "body" => PolicyFields.Body,
                    "subject" => PolicyFields.Subject,
                    _ => throw Error($"'where' may list \"body\" and \"subject\", not \"{n}\""),
                };
            if (fields == PolicyFields.None) throw Error("'where' must name at least one of \"body\", \"subject\"");
            return fields;
        }
    }
}
