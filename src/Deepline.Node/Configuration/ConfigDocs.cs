using System.Text;

namespace Deepline.Node.Configuration;

/// <summary>
/// config.yaml and the configuration reference's table (docs/configuration.md) as the key table writes them: a key added to
/// <see cref="ConfigKeys.All"/> reaches both documents, and a test fails while either is stale.
/// </summary>
public static class ConfigDocs
{
    /// <summary>The manual's configuration reference, relative to the repository root, which holds the generated table.</summary>
    public const string ReferencePath = "docs/configuration.md";

    /// <summary>The lines around the generated table in <see cref="ReferencePath"/>.</summary>
    public const string KeyTableBegin = "<!-- config-keys:begin (generated from ConfigKeys.All, checked by ConfigDocsTests) -->";
    public const string KeyTableEnd = "<!-- config-keys:end -->";

    private const int CommentColumn = 34;

    /// <summary>The shipped config.yaml: every key at its default, described, with its environment variable.</summary>
    public static string ConfigYaml()
    {
        var sb = new StringBuilder();
        sb.Append("# Deepline.Actors node configuration (the defaults), generated from the key table (src/Deepline.Node/Configuration/ConfigKeys.cs).\n");
        sb.Append("# Every key is optional and every key has a DEEPLINE_* environment override that wins over this file,\n");
        sb.Append("# e.g. DEEPLINE_DEADLOCK_CHECK_INTERVAL=30. The node reads the file named on the command line, else $DEEPLINE_CONFIG,\n");
        sb.Append("# else ./config.yaml.\n");
        var open = new List<string>();
        foreach (var key in ConfigKeys.All)
        {
            var sections = key.Path.Split('.')[..^1];
            var common = 0;
            while (common < open.Count && common < sections.Length && open[common] == sections[common]) common++;
            open = [.. open.Take(common)];
            for (var i = common; i < sections.Length; i++)
            {
                sb.Append(' ', 2 * i).Append(sections[i]).Append(":\n");
                open.Add(sections[i]);
            }
            var line = $"{new string(' ', 2 * sections.Length)}{key.Name}: {key.DefaultValue}";
            sb.Append(line.PadRight(Math.Max(CommentColumn, line.Length + 1)))
                .Append("# ").Append(key.Description.TrimEnd('.')).Append("; ").Append(key.EnvironmentVariable).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>The reference's table of keys (between <see cref="KeyTableBegin"/> and <see cref="KeyTableEnd"/>).</summary>
    public static string KeyTable()
    {
        var sb = new StringBuilder();
        sb.Append("| key | default | environment | what it does |\n");
        sb.Append("| --- | --- | --- | --- |\n");
        foreach (var key in ConfigKeys.All)
        {
            sb.Append($"| `{key.Path}` | `{key.DefaultValue}` | `{key.EnvironmentVariable}` | {key.Description.Replace("|", "\\|", StringComparison.Ordinal)} |\n");
        }
        return sb.ToString();
    }
}
