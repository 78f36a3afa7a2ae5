//! Small helpers to put attributes into a dicom-object data set: one line per attribute in the writers.

use dicom_core::value::{DataSetSequence, PrimitiveValue};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

/// An attribute set under construction (a whole object or a sequence item).
pub(crate) type Ds = InMemDicomObject;

/// Formats `x` as a DICOM Decimal String (at most 16 characters, PS3.5 6.2).
pub(crate) fn ds(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return "0".into();
    }
    for decimals in (0..=8).rev() {
        let s = format!("{x:.decimals$}");
        let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_string() } else { s };
        if s.len() <= 16 {
            return if s == "-0" { "0".into() } else { s };
        }
    }
    format!("{x:.6e}")
}

/// Builder-style helpers on a data set.
pub(crate) trait Put {
    /// A string value (any string VR).
    fn s(&mut self, tag: Tag, vr: VR, v: &str) -> &mut Self;
    /// A multi-valued string.
    fn strs(&mut self, tag: Tag, vr: VR, v: &[&str]) -> &mut Self;
    /// An empty (type 2) attribute.
    fn empty(&mut self, tag: Tag, vr: VR) -> &mut Self;
    /// Decimal strings.
    fn ds(&mut self, tag: Tag, v: &[f64]) -> &mut Self;
    /// An integer string.
    fn is(&mut self, tag: Tag, v: i64) -> &mut Self;
    /// An unsigned short.
    fn us(&mut self, tag: Tag, v: u16) -> &mut Self;
    /// Unsigned longs.
    fn ul(&mut self, tag: Tag, v: &[u32]) -> &mut Self;
    /// Floating-point doubles.
    fn fd(&mut self, tag: Tag, v: &[f64]) -> &mut Self;
    /// Floating-point singles.
    fn fl(&mut self, tag: Tag, v: &[f64]) -> &mut Self;
    /// A sequence of items.
    fn seq(&mut self, tag: Tag, items: Vec<Ds>) -> &mut Self;
    /// The Image Pixel module of a 16-bit unsigned MONOCHROME2 image of `rows` x `cols`.
    fn grey16(&mut self, rows: usize, cols: usize) -> &mut Self {
        self.us(tags::SAMPLES_PER_PIXEL, 1)
            .s(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2")
            .us(tags::ROWS, rows as u16)
            .us(tags::COLUMNS, cols as u16)
            .us(tags::BITS_ALLOCATED, 16)
            .us(tags::BITS_STORED, 16)
            .us(tags::HIGH_BIT, 15)
            .us(tags::PIXEL_REPRESENTATION, 0)
    }
    /// Pixel Intensity Relationship (`LIN` or `LOG`) and its sign (+1: larger is more signal).
    fn intensity_relationship(&mut self, relationship: &str, sign: i16) -> &mut Self {
        self.s(tags::PIXEL_INTENSITY_RELATIONSHIP, VR::CS, relationship).put_element(DataElement::new(
            tags::PIXEL_INTENSITY_RELATIONSHIP_SIGN,
            VR::SS,
            PrimitiveValue::from(sign),
        ))
    }
    /// Puts one element.
    fn put_element(&mut self, element: DataElement<InMemDicomObject>) -> &mut Self;
}

impl Put for Ds {
    fn put_element(&mut self, element: DataElement<InMemDicomObject>) -> &mut Self {
        self.put(element);
        self
    }
    fn s(&mut self, tag: Tag, vr: VR, v: &str) -> &mut Self {
        self.put(DataElement::new(tag, vr, PrimitiveValue::from(v)));
        self
    }
    fn strs(&mut self, tag: Tag, vr: VR, v: &[&str]) -> &mut Self {
        let values: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        self.put(DataElement::new(tag, vr, PrimitiveValue::Strs(values.into())));
        self
    }
    fn empty(&mut self, tag: Tag, vr: VR) -> &mut Self {
        self.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
        self
    }
    fn ds(&mut self, tag: Tag, v: &[f64]) -> &mut Self {
        let values: Vec<String> = v.iter().map(|&x| ds(x)).collect();
        self.put(DataElement::new(tag, VR::DS, PrimitiveValue::Strs(values.into())));
        self
    }
    fn is(&mut self, tag: Tag, v: i64) -> &mut Self {
        self.put(DataElement::new(tag, VR::IS, PrimitiveValue::from(v.to_string())));
        self
    }
    fn us(&mut self, tag: Tag, v: u16) -> &mut Self {
        self.put(DataElement::new(tag, VR::US, PrimitiveValue::from(v)));
        self
    }
    fn ul(&mut self, tag: Tag, v: &[u32]) -> &mut Self {
        self.put(DataElement::new(tag, VR::UL, PrimitiveValue::U32(v.iter().copied().collect())));
        self
    }
    fn fd(&mut self, tag: Tag, v: &[f64]) -> &mut Self {
        self.put(DataElement::new(tag, VR::FD, PrimitiveValue::F64(v.iter().copied().collect())));
        self
    }
    fn fl(&mut self, tag: Tag, v: &[f64]) -> &mut Self {
        self.put(DataElement::new(tag, VR::FL, PrimitiveValue::F32(v.iter().map(|&x| x as f32).collect())));
        self
    }
    fn seq(&mut self, tag: Tag, items: Vec<Ds>) -> &mut Self {
        self.put(DataElement::new(tag, VR::SQ, DataSetSequence::from(items)));
        self
    }
}

/// A new empty item.
pub(crate) fn item() -> Ds {
    InMemDicomObject::new_empty()
}

/// A code sequence item: value, scheme, meaning (PS3.3 Table 8.8-1).
pub(crate) fn code(value: &str, scheme: &str, meaning: &str) -> Ds {
    use dicom_dictionary_std::tags;
    let mut c = item();
    c.s(tags::CODE_VALUE, VR::SH, value).s(tags::CODING_SCHEME_DESIGNATOR, VR::SH, scheme).s(
        tags::CODE_MEANING,
        VR::LO,
        meaning,
    );
    c
}

#[cfg(test)]
mod tests {
    use super::ds;

    #[test]
    fn decimal_strings_fit_sixteen_characters() {
        assert_eq!(ds(0.3), "0.3");
        assert_eq!(ds(-12.5), "-12.5");
        assert_eq!(ds(650.0), "650");
        for x in [1.0 / 3.0, -123456.789012345, 1e-9, 6.02e23, -0.0000001] {
            let s = ds(x);
            assert!(s.len() <= 16, "{s}");
            let back: f64 = s.parse().unwrap();
            assert!((back - x).abs() <= 1e-6 * x.abs().max(1e-3), "{x} -> {s}");
        }
    }
}
