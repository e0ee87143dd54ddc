using System.Globalization;
using System.Text;

namespace LongContext.Text.SentencePiece;

/// <summary>
/// Ids to text exactly as sentencepiece's <c>SentencePieceProcessor::Decode</c> (0.1.97) does it, for the models
/// <see cref="SentencePieceToHfJson.CheckSupported"/> admits:
/// <list type="bullet">
/// <item>control pieces (<c>&lt;s&gt;</c>, <c>&lt;/s&gt;</c>) give nothing; the unknown piece gives
/// <c>trainer_spec.unk_surface</c> (<c>" ⁇ "</c> by default);</item>
/// <item>a run of byte pieces is read as UTF-8 one character at a time: a well-formed character (1 to 4 bytes, no
/// surrogate, no overlong form) gives itself, and every other byte gives one U+FFFD. Any other piece, control pieces
/// included, ends the run;</item>
/// <item>other pieces give their text with ▁ (U+2581) as a space; with <c>add_dummy_prefix</c>, one leading ▁ is
/// dropped from the first such piece if nothing visible came before it.</item>
/// </list>
/// HF tokenizers' <c>ByteFallback</c> decoder differs on broken UTF-8 (it turns every byte of a run that is not
/// valid as a whole into U+FFFD, valid characters included), which is why <c>tokenizer.model</c> is not decoded
/// through the converted <c>tokenizer.json</c>.
/// </summary>
internal sealed class SentencePieceDecoder
{
    private const string Replacement = "\uFFFD";
    private const char SpaceSymbol = '\u2581';

    private readonly PieceType[] _types;
    private readonly string[] _text;      // normal pieces: ▁ as space; the unknown piece: its surface
    private readonly bool[] _leadingSpace; // with add_dummy_prefix: a normal piece whose text starts with ▁
    private readonly byte[] _byteValue;

    /// <summary>Prepares the pieces of a model.</summary>
    /// <param name="model">The model read.</param>
    /// <param name="path">Its file, for the message of <see cref="InvalidDataException"/>.</param>
    /// <exception cref="InvalidDataException">A byte piece whose text is not <c>&lt;0xXX&gt;</c>.</exception>
    public SentencePieceDecoder(SentencePieceModel model, string path)
    {
        int n = model.Pieces.Count;
        _types = new PieceType[n];
        _text = new string[n];
        _leadingSpace = new bool[n];
        _byteValue = new byte[n];
        for (int i = 0; i < n; i++)
        {
            Piece p = model.Pieces[i];
            _types[i] = p.Type;
            switch (p.Type)
            {
                case PieceType.Byte:
                    _byteValue[i] = ByteOf(p.Text) ?? throw new InvalidDataException(
                        $"'{path}': piece {i} is of type BYTE but its text is '{p.Text}'; byte pieces are written <0x00>..<0xFF>.");
                    _text[i] = "";
                    break;
                case PieceType.Control:
                    _text[i] = "";
                    break;
                case PieceType.Unknown:
                    _text[i] = model.UnknownSurface;
                    break;
                default:
                    // sentencepiece also drops it with remove_extra_whitespaces, which CheckSupported refuses
                    _leadingSpace[i] = model.AddDummyPrefix && p.Text.Length > 0 && p.Text[0] == SpaceSymbol;
                    _text[i] = p.Text.Replace(SpaceSymbol, ' ');
                    break;
            }
        }
    }

    /// <summary>The text of the ids (each already checked to be in range).</summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        bool expectFirstSpace = true;   // sentencepiece's is_bos_ws
        bool firstSpaceDropped = false; // its bos_ws_seen
        foreach (int id in ids)
        {
            if (_types[id] == PieceType.Byte) { bytes.Add(_byteValue[id]); continue; }
            AppendBytes(text, bytes);
            bytes.Clear();
            if (firstSpaceDropped || text.Length > 0) expectFirstSpace = false;
            firstSpaceDropped = false;
            string piece = _text[id];
            if (expectFirstSpace && _leadingSpace[id])
            {
                piece = piece[1..];
                firstSpaceDropped = true;
            }
            text.Append(piece);
        }
        AppendBytes(text, bytes);
        return text.ToString();
    }

    /// <summary>A run of byte pieces, one character or one invalid byte at a time, as sentencepiece reads it.</summary>
    private static void AppendBytes(StringBuilder text, List<byte> bytes)
    {
        int at = 0;
        while (at < bytes.Count)
        {
            int length = CharacterLength(bytes, at);
            if (length == 0) { text.Append(Replacement); at++; continue; }
            text.Append(Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(bytes).Slice(at, length)));
            at += length;
        }
    }

    /// <summary>
    /// The length of the well-formed UTF-8 character at <paramref name="at"/>, or 0 when the byte there does not start
    /// one (a lone continuation byte, a truncated or overlong sequence, a surrogate, beyond U+10FFFF).
    /// </summary>
    private static int CharacterLength(IReadOnlyList<byte> b, int at)
    {
        int left = b.Count - at;
        byte b0 = b[at];
        static bool Trail(byte x) => (x & 0xC0) == 0x80;
        static bool Valid(int cp) => cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF);
        if (b0 < 0x80) return 1;
        if (left >= 2 && (b0 & 0xE0) == 0xC0)
        {
            int cp = ((b0 & 0x1F) << 6) | (b[at + 1] & 0x3F);
            return Trail(b[at + 1]) && cp >= 0x80 && Valid(cp) ? 2 : 0;
        }
        if (left >= 3 && (b0 & 0xF0) == 0xE0)
        {
            int cp = ((b0 & 0x0F) << 12) | ((b[at + 1] & 0x3F) << 6) | (b[at + 2] & 0x3F);
            return Trail(b[at + 1]) && Trail(b[at + 2]) && cp >= 0x800 && Valid(cp) ? 3 : 0;
        }
        if (left >= 4 && (b0 & 0xF8) == 0xF0)
        {
            int cp = ((b0 & 0x07) << 18) | ((b[at + 1] & 0x3F) << 12) | ((b[at + 2] & 0x3F) << 6) | (b[at + 3] & 0x3F);
            return Trail(b[at + 1]) && Trail(b[at + 2]) && Trail(b[at + 3]) && cp >= 0x10000 && Valid(cp) ? 4 : 0;
        }
        return 0;
    }

    private static byte? ByteOf(string piece)
        => piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
           && byte.TryParse(piece.AsSpan(3, 2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out byte v)
            ? v : null;
}
