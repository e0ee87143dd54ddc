using System.Text;

namespace LongContext.Text.SentencePiece;

/// <summary>
/// Reads a SentencePiece <c>tokenizer.model</c> (a serialized <c>ModelProto</c>, protobuf wire format) into a
/// <see cref="SentencePieceModel"/>. Field numbers are those of sentencepiece's <c>sentencepiece_model.proto</c>;
/// unknown fields are skipped as protobuf requires. Malformed files throw <see cref="InvalidDataException"/>
/// naming the file and the byte offset.
/// </summary>
internal static class SentencePieceModelReader
{
    public static SentencePieceModel Read(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        try
        {
            return Parse(data);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"'{path}' is not a valid SentencePiece model: {e.Message}", e);
        }
    }

    internal static SentencePieceModel Parse(ReadOnlySpan<byte> data)
    {
        var pieces = new List<Piece>();
        var model = new SentencePieceModel { Pieces = pieces };
        var reader = new WireReader(data);
        while (!reader.End)
        {
            (int field, int wire) = reader.Tag();
            switch (field, wire)
            {
                case (1, 2): pieces.Add(ParsePiece(reader.Bytes())); break;
                case (2, 2): model = ParseTrainerSpec(reader.Bytes(), model); break;
                case (3, 2): model = ParseNormalizerSpec(reader.Bytes(), model); break;
                case (5, 2): model = model with { DenormalizerCharsmapLength = DenormalizerCharsmap(reader.Bytes()) }; break;
                default: reader.Skip(wire); break;
            }
        }
        if (pieces.Count == 0) throw new InvalidDataException("it holds no pieces");
        return model;
    }

    private static Piece ParsePiece(ReadOnlySpan<byte> data)
    {
        var reader = new WireReader(data);
        string text = "";
        float score = 0;
        var type = PieceType.Normal;
        while (!reader.End)
        {
            (int field, int wire) = reader.Tag();
            switch (field, wire)
            {
                case (1, 2): text = Encoding.UTF8.GetString(reader.Bytes()); break;
                case (2, 5): score = reader.Fixed32Float(); break;
                case (3, 0):
                    ulong t = reader.Varint();
                    type = Enum.IsDefined(typeof(PieceType), (int)t) ? (PieceType)(int)t : throw new InvalidDataException($"piece type {t} is not one of SentencePiece's");
                    break;
                default: reader.Skip(wire); break;
            }
        }
        return new Piece(text, score, type);
    }

    private static SentencePieceModel ParseTrainerSpec(ReadOnlySpan<byte> data, SentencePieceModel model)
    {
        var reader = new WireReader(data);
        while (!reader.End)
        {
            (int field, int wire) = reader.Tag();
            if ((field, wire) == (44, 2)) { model = model with { UnknownSurface = Encoding.UTF8.GetString(reader.Bytes()) }; continue; }
            if (wire != 0) { reader.Skip(wire); continue; }
            ulong v = reader.Varint();
            model = field switch
            {
                3 => model with { ModelType = (int)v },
                24 => model with { TreatWhitespaceAsSuffix = v != 0 },
                35 => model with { ByteFallback = v != 0 },
                40 => model with { UnkId = (int)v },
                41 => model with { BosId = (int)v },
                42 => model with { EosId = (int)v },
                43 => model with { PadId = (int)v },
                _ => model,
            };
        }
        return model;
    }

    private static SentencePieceModel ParseNormalizerSpec(ReadOnlySpan<byte> data, SentencePieceModel model)
    {
        var reader = new WireReader(data);
        while (!reader.End)
        {
            (int field, int wire) = reader.Tag();
            switch (field, wire)
            {
                case (1, 2): model = model with { NormalizerName = Encoding.UTF8.GetString(reader.Bytes()) }; break;
                case (2, 2): model = model with { PrecompiledCharsmapLength = reader.Bytes().Length }; break;
                case (3, 0): model = model with { AddDummyPrefix = reader.Varint() != 0 }; break;
                case (4, 0): model = model with { RemoveExtraWhitespaces = reader.Varint() != 0 }; break;
                case (5, 0): model = model with { EscapeWhitespaces = reader.Varint() != 0 }; break;
                default: reader.Skip(wire); break;
            }
        }
        return model;
    }

    /// <summary>Length of <c>denormalizer_spec.precompiled_charsmap</c>: sentencepiece denormalizes decoded text only when it is non-empty (a name alone, such as <c>identity</c>, does nothing).</summary>
    private static int DenormalizerCharsmap(ReadOnlySpan<byte> data)
    {
        var reader = new WireReader(data);
        int length = 0;
        while (!reader.End)
        {
            (int field, int wire) = reader.Tag();
            if ((field, wire) == (2, 2)) length += reader.Bytes().Length;
            else reader.Skip(wire);
        }
        return length;
    }

    /// <summary>A forward reader of protobuf's wire format: varints, fixed 32/64-bit values, length-delimited bytes.</summary>
    private ref struct WireReader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _pos;

        public readonly bool End => _pos >= _data.Length;

        public (int Field, int Wire) Tag()
        {
            ulong tag = Varint();
            int field = (int)(tag >> 3);
            if (field == 0) throw new InvalidDataException($"field number 0 at byte {_pos}");
            return (field, (int)(tag & 7));
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_pos >= _data.Length) throw new InvalidDataException($"truncated varint at byte {_pos}");
                byte b = _data[_pos++];
                value |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return value;
            }
            throw new InvalidDataException($"varint longer than 10 bytes at byte {_pos}");
        }

        public float Fixed32Float()
        {
            if (_pos + 4 > _data.Length) throw new InvalidDataException($"truncated fixed32 at byte {_pos}");
            float f = BitConverter.Int32BitsToSingle(System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(_data.Slice(_pos, 4)));
            _pos += 4;
            return f;
        }

        public ReadOnlySpan<byte> Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(_data.Length - _pos)) throw new InvalidDataException($"length {length} at byte {_pos} runs past the end ({_data.Length} bytes)");
            var slice = _data.Slice(_pos, (int)length);
            _pos += (int)length;
            return slice;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: Advance(8); break;
                case 2: Bytes(); break;
                case 5: Advance(4); break;
                default: throw new InvalidDataException($"unsupported wire type {wire} at byte {_pos}");
            }
        }

        private void Advance(int n)
        {
            if (_pos + n > _data.Length) throw new InvalidDataException($"truncated field at byte {_pos}");
            _pos += n;
        }
    }
}
