// Thai word and line breaking for a Java runtime that was trimmed of it (jlink --include-locales),
// patched in with --patch-module jdk.localedata=... together with the four data files of the same
// name taken from a full JDK of the machine (see _java.py). The data files' format is the same in
// every JDK since 9; this class is the form of Java 20 and later, whose list of break iterator
// classes has no entry for characters (word, line, sentence), so it is written here rather than
// copied from an older JDK.
package sun.text.resources.ext;

import java.util.ListResourceBundle;

public class BreakIteratorInfo_th extends ListResourceBundle {
    @Override
    protected final Object[][] getContents() {
        return new Object[][] {
            {"BreakIteratorClasses", new String[] {
                "DictionaryBasedBreakIterator", "DictionaryBasedBreakIterator", "RuleBasedBreakIterator"}},
            {"WordData", "WordBreakIteratorData_th"},
            {"LineData", "LineBreakIteratorData_th"},
            {"WordDictionary", "thai_dict"},
            {"LineDictionary", "thai_dict"},
        };
    }
}
