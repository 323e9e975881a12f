using System.Text;
using System.Text.Json;

namespace Deepline.Domain;

/// <summary>The size a caller-supplied JSON value takes in the journal, measured the same way at every door.</summary>
public static class JsonSize
{
    public static int Utf8Bytes(JsonElement value) =>
        value.ValueKind is JsonValueKind.Undefined ? 0 : Encoding.UTF8.GetByteCount(value.GetRawText());
}
