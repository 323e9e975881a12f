using System.Collections.Immutable;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Deepline.Domain;
using Deepline.Node.Configuration;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Deepline.Node.Security;

/// <summary>
/// Reads <c>{"keys": [{"name", "key" | "key_sha256", "role", "client_id"?, "pools"?}]}</c> from a JSON or YAML
/// file (JSON is read as YAML, its superset). Every problem is collected, one line each, naming the entry and
/// the field; a key's value never appears in a message.
/// </summary>
public static class KeysFile
{
    public const int MinKeyLength = 16;
    private static readonly string[] Fields = ["name", "key", "key_sha256", "role", "client_id", "pools"];

    public static ImmutableArray<ApiKey> Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"orchestrator.auth.keys_file: \"{path}\" cannot be read: {e.Message}");
        }
        return Parse(text, path);
    }

    public static ImmutableArray<ApiKey> Parse(string text, string path)
    {
        var errors = new List<string>();
        var keys = ImmutableArray.CreateBuilder<ApiKey>();
        var where = $"orchestrator.auth.keys_file \"{path}\"";
        YamlNode? root;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(text));
            root = stream.Documents.Count == 0 ? null : stream.Documents[0].RootNode;
        }
        catch (YamlException e)
        {
            throw new ConfigException($"{where}, line {e.Start.Line}: not valid JSON or YAML: {e.Message}");
        }

        if (root is not YamlMappingNode map || !map.Children.TryGetValue(new YamlScalarNode("keys"), out var list) || list is not YamlSequenceNode entries)
            throw new ConfigException($"{where}: must be an object with a \"keys\" list, e.g. {{\"keys\": [{{\"name\": \"ci\", \"key\": \"...\", \"role\": \"submitter\", \"client_id\": \"team-a\"}}]}}");

        var names = new HashSet<string>(StringComparer.Ordinal);
        var digests = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < entries.Children.Count; i++)
        {
            var at = string.Create(CultureInfo.InvariantCulture, $"{where}, keys[{i}]");
            if (entries.Children[i] is not YamlMappingNode entry)
            {
                errors.Add($"{at}: must be an object");
                continue;
            }
            var fields = new Dictionary<string, YamlNode>(StringComparer.Ordinal);
            foreach (var (k, v) in entry.Children)
            {
                var name = (k as YamlScalarNode)?.Value ?? "";
                if (!Fields.Contains(name)) errors.Add($"{at}: unknown field \"{Identifiers.StripControl(name)}\" (known: {string.Join(", ", Fields)})");
                else fields[name] = v;
            }
            string? Scalar(string f) => fields.TryGetValue(f, out var n) ? (n as YamlScalarNode)?.Value : null;

            var keyName = Scalar("name");
            if (keyName is null || !Identifiers.IsValid(keyName))
                errors.Add($"{at}.name: {Identifiers.Describe("name")}");
            else if (!names.Add(keyName))
                errors.Add($"{at}.name: \"{keyName}\" is used by another key");

            var roleText = Scalar("role");
            Role? role = roleText is not null && Enum.GetNames<Role>().Contains(roleText) ? Enum.Parse<Role>(roleText) : null;
            if (role is null)
                errors.Add($"{at}.role: must be one of {string.Join(", ", Enum.GetNames<Role>())}");

            byte[]? digest = null;
            var plain = Scalar("key");
            var hashed = Scalar("key_sha256");
            if ((plain is null) == (hashed is null))
                errors.Add($"{at}: needs exactly one of \"key\" or \"key_sha256\"");
            else if (plain is not null)
            {
                if (plain.Length < MinKeyLength || plain.Any(c => char.IsWhiteSpace(c) || char.IsControl(c)))
                    errors.Add($"{at}.key: must be at least {MinKeyLength} characters without spaces");
                else digest = SHA256.HashData(Encoding.UTF8.GetBytes(plain));
            }
            else
            {
                try
                {
                    digest = hashed!.Length == 64 ? Convert.FromHexString(hashed) : null;
                }
                catch (FormatException)
                {
                    digest = null;
                }
                if (digest is null) errors.Add($"{at}.key_sha256: must be 64 hex digits (sha256sum of the key)");
            }
            if (digest is not null && !digests.Add(Convert.ToHexString(digest)))
                errors.Add($"{at}: the same key is listed twice");

            var clientId = Scalar("client_id");
            if (clientId is not null && !Identifiers.IsValid(clientId))
                errors.Add($"{at}.client_id: {Identifiers.Describe("client_id")}");
            if (role == Role.submitter && clientId is null)
                errors.Add($"{at}.client_id: a submitter key needs the client_id its runs belong to");

            ImmutableArray<string>? pools = null;
            if (fields.TryGetValue("pools", out var poolsNode))
            {
                if (poolsNode is not YamlSequenceNode seq || seq.Children.Any(c => c is not YamlScalarNode { Value: { } v } || !Identifiers.IsValid(v)))
                    errors.Add($"{at}.pools: must be a list of pool names");
                else pools = [.. seq.Children.Select(c => ((YamlScalarNode)c).Value!)];
                if (role is not (Role.worker or null))
                    errors.Add($"{at}.pools: only a worker key serves pools");
            }

            if (keyName is not null && role is { } r && digest is not null)
                keys.Add(new ApiKey(keyName, r, clientId, pools, [.. digest]));
        }
        if (errors.Count > 0) throw new ConfigException(errors);
        if (keys.Count == 0) throw new ConfigException($"{where}: lists no keys; nobody could call the API");
        return keys.ToImmutable();
    }
}
