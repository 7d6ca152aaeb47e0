package fixtures.literals;

public class Literals {
    static final int DECIMAL = 42;
    static final int WITH_UNDERSCORES = 1_000_000;
    static final long LONG_VALUE = 9_223_372_036_854_775_807L;
    static final int HEX = 0xCAFE_BABE;
    static final int OCTAL = 0777;
    static final int BINARY = 0b1010_1010;
    static final long BINARY_LONG = 0B1L;
    static final double DOUBLE = 3.141_592;
    static final double EXPONENT = 6.022e23;
    static final float FLOAT = 1.5f;
    static final double LEADING_DOT = .5d;
    static final double TRAILING_DOT = 2.;
    static final double HEX_FLOAT = 0x1.8p3;
    static final float HEX_FLOAT_F = 0X1P-4f;
    static final boolean YES = true;
    static final boolean NO = false;
    static final String GREETING = "Hello, \"world\" // not a comment";
    static final String EMPTY = "";
    static final char QUOTE = '\'';
    static final char UNICODE_ESCAPE = '\u0041';
    static final String BLOCK = """
        SELECT * FROM t WHERE a >= 1 && b != 2;
        -- a text block: {braces} (parens) [brackets]
        """;

    static boolean flip(boolean value) {
        return value ? false : true;
    }

    static String describe(int n) {
        return n + " items, " + (n > 1 ? "many" : "one");
    }
}
